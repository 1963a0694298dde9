"""An Inspect eval of two samples in sandbox="toolhost": Inspect's mockllm model calls the bash
tool to write a file, and the scorer reads it back from the sample's sandbox. Prints JSON: each
sample's score and what its bash call printed. Usage: TOOLHOST_BIN=... python inspect_eval.py LOGDIR
"""
import json
import sys

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState, generate, use_tools
from inspect_ai.tool import bash
from inspect_ai.util import sandbox


@scorer(metrics=[accuracy()])
def wrote_it():
    async def score(state: TaskState, target: Target) -> Score:
        try:
            text = await sandbox().read_file("answer.txt")
        except FileNotFoundError:
            return Score(value=INCORRECT, explanation="no answer.txt")
        return Score(value=CORRECT if text.strip() == target.text else INCORRECT, explanation=text)
    return score


def counted(output):
    # Given usage, mockllm does not count tokens itself (tiktoken would download its tables).
    output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return output


def outputs():
    # Samples run one at a time (max_samples=1): each gets a bash call, then an answer.
    for word in ["alpha", "beta"]:
        yield counted(ModelOutput.for_tool_call("mockllm/model", "bash", {"command": f"echo {word} > answer.txt; pwd; ls /root"}))
        yield counted(ModelOutput.from_content("mockllm/model", "done"))


task = Task(
    dataset=[Sample(input="write alpha", target="alpha"), Sample(input="write beta", target="beta")],
    solver=[use_tools([bash(timeout=60)]), generate()],
    scorer=wrote_it(),
    sandbox="toolhost",
)
log = eval(task, model=get_model("mockllm/model", custom_outputs=outputs()), max_samples=1,
           log_dir=sys.argv[1], display="none")[0]
samples = [
    {"id": sample.id, "score": {k: v.value for k, v in (sample.scores or {}).items()},
     "tool": [m.text for m in sample.messages if m.role == "tool"]}
    for sample in log.samples or []
]
print(json.dumps({"status": log.status, "error": log.error.message[:500] if log.error else None, "samples": samples}, indent=1))
