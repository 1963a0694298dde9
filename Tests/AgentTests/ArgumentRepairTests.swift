import JSONCore
import ModelEndpoints
import Testing

@Suite struct ArgumentRepairTests {
    let schema = testTools[0].inputSchema  // get_weather: city string (required), days integer

    func repaired(_ text: String) throws -> ArgumentRepair.Repaired {
        try ArgumentRepair.repair(text, schema: schema).get()
    }

    @Test func validJSONIsTakenAsItIsWithNoRepairs() throws {
        let result = try repaired(#"{"city": "Paris", "days": 2}"#)
        #expect(result.value == ["city": "Paris", "days": 2])
        #expect(result.repairs.isEmpty)
    }

    @Test(arguments: [
        (#"{"city": "Paris", "days": 2,}"#, "removed trailing commas"),
        ("{'city': 'Paris', 'days': 2}", "turned single-quoted strings into JSON strings"),
        (#"{"city": "Paris", "days": 2, "x": None}"#, "turned Python's True/False/None into JSON"),
        ("{\"city\": \"Paris\nFrance\", \"days\": 2}", "escaped raw newlines or control characters inside strings"),
        (#""{\"city\": \"Paris\", \"days\": 2}""#, "decoded arguments that were a JSON object inside a string"),
        ("```json\n{\"city\": \"Paris\", \"days\": 2}\n```", "removed a markdown fence around the JSON"),
        (#"{"city": "Paris", "days": "2"}"#, "coerced 'days' from \"2\" to integer"),
        (#"{"city": "Paris", "days": 2} {"city": "Rome"}"#, "dropped text after the JSON value"),
    ])
    func eachRepairIsMadeAndNamed(text: String, repair: String) throws {
        let result = try repaired(text)
        #expect(result.value["city"]?.stringValue?.hasPrefix("Paris") == true)
        #expect(result.value["days"] == nil || result.value["days"] == 2)
        #expect(result.repairs.contains(repair), "\(result.repairs)")
    }

    @Test func repairsDoNotTouchStringContents() throws {
        // True, a trailing comma and single quotes inside strings are content, not syntax.
        let result = try repaired(#"{'city': "it's True, really,]", 'days': 1,}"#)
        #expect(result.value["city"] == "it's True, really,]")
    }

    @Test(arguments: [
        (#"{"city": "Paris""#, "the arguments are not valid JSON"),
        ("[\"Paris\"]", "must be a JSON object, got array"),
        ("city=Paris", "not valid JSON"),
    ])
    func whatCannotBeRepairedSaysWhatAndShowsTheSchema(text: String, message: String) {
        guard case .failure(let problem) = ArgumentRepair.repair(text, schema: schema) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(problem.message.contains(message), "\(problem.message)")
        #expect(problem.message.contains(#"{"city": string (required), "days": integer}"#), "\(problem.message)")
    }
}
