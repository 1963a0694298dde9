/// `stop_background`: ends one background process of the session (and all it started), or all.
struct StopBackgroundTool: Tool {
    let name = "stop_background"

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let id = try arguments.string("id")
        let ids = id == "all" ? await session.backgroundJobs.keys.sorted() : [id]
        var stopped: [String] = []
        for candidate in ids where await session.stopBackground(candidate) { stopped.append(candidate) }
        guard !stopped.isEmpty || id == "all" else {
            let known = await session.backgroundJobs.keys.sorted()
            throw ToolError("no background process \(id); \(known.isEmpty ? "none is running" : "the ids are \(known.joined(separator: ", "))")", kind: .usage)
        }
        return .text(
            stopped.isEmpty ? "No background processes were running." : "Stopped \(stopped.joined(separator: ", ")) and everything they started.",
            structured: ["stopped": .array(stopped.map(JSONValue.string))])
    }
}
