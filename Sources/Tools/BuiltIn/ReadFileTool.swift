import Foundation

/// `read_file`: numbered lines, a page at a time, streamed so a huge file is never loaded whole.
struct ReadFileTool: Tool {
    let name = "read_file"
    static let defaultLimit = 500
    /// A longer line is cut: minified bundles would otherwise flood the context.
    static let maxLineBytes = 2000
    /// A page stops early once it holds this much text.
    static let maxPageBytes = 100_000

    func run(_ arguments: Arguments, in session: Session) async throws -> ToolResult {
        let workspace = session.workspace
        let resolved = try workspace.resolve(try arguments.string("path"))
        switch resolved.kind {
        case .missing: throw FileAccess.missing(resolved, in: workspace)
        case .directory: throw ToolError(Self.directoryMessage(resolved, in: workspace))
        case .file: break
        }
        let offset = arguments.int("offset") ?? 1
        let limit = arguments.int("limit") ?? Self.defaultLimit
        let page = try Page.read(workspace.openRegularFile(resolved), display: resolved.display, offset: offset, limit: limit)
        return .text(
            page.render(),
            structured: [
                "path": .string(resolved.display), "total_lines": .int(page.totalLines), "bytes": .int(page.totalBytes),
                "first_line": .int(offset), "lines_returned": .int(page.lines.count),
            ])
    }

    static func directoryMessage(_ resolved: Workspace.Resolved, in workspace: Workspace) -> String {
        let entries = workspace.entries(of: resolved.relative) ?? []
        let shown = entries.prefix(50).joined(separator: ", ")
        let more = entries.count > 50 ? " and \(entries.count - 50) more" : ""
        return "\(resolved.display) is a folder, not a file. It holds: \(shown.isEmpty ? "nothing" : shown)\(more). Read one of its files."
    }
}

/// One page of a text file, found in a single streaming pass that also counts every line.
struct Page {
    var lines: [(number: Int, text: String)] = []
    var totalLines = 0
    var totalBytes = 0
    var endsWithNewline = true
    var cutLines = 0
    var invalidUTF8 = false
    var stoppedForSize = false
    let display: String
    let offset: Int

    static func read(_ handle: FileHandle, display: String, offset: Int, limit: Int) throws -> Page {
        defer { try? handle.close() }
        var page = Page(display: display, offset: offset)
        var current: [UInt8] = []  // the line being assembled, only while it is on the page
        var pageBytes = 0
        var first = true
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            if first, chunk.prefix(8192).contains(0) {
                var info = stat()
                _ = fstat(handle.fileDescriptor, &info)
                throw ToolError(
                    "\(display) is a binary file (\(info.st_size) bytes); read_file shows text only. Inspect it with execute, e.g. `file \(display)` or `xxd \(display) | head`")
            }
            first = false
            page.totalBytes += chunk.count
            chunk.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                guard let base = raw.baseAddress else { return }
                var start = 0
                while start < raw.count {
                    let rest = raw.count - start
                    let found = memchr(base + start, 0x0A, rest)
                    let end = found.map { base.distance(to: UnsafeRawPointer($0)) } ?? raw.count
                    let lineNumber = page.totalLines + 1
                    let wanted = lineNumber >= offset && page.lines.count < limit && !page.stoppedForSize
                    if wanted && current.count < ReadFileTool.maxLineBytes + 4 {
                        let take = min(end - start, ReadFileTool.maxLineBytes + 4 - current.count)
                        current.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start..<(start + take)]))
                    }
                    if found != nil {
                        if wanted { page.add(&current, number: lineNumber, pageBytes: &pageBytes) }
                        page.totalLines += 1
                        current.removeAll(keepingCapacity: true)
                        start = end + 1
                    } else {
                        start = raw.count
                    }
                }
                page.endsWithNewline = raw.last == 0x0A
            }
        }
        if !page.endsWithNewline && page.totalBytes > 0 {
            // The last line has no newline: it still counts.
            let lineNumber = page.totalLines + 1
            if lineNumber >= offset && page.lines.count < limit && !page.stoppedForSize {
                page.add(&current, number: lineNumber, pageBytes: &pageBytes)
            }
            page.totalLines += 1
        }
        return page
    }

    private mutating func add(_ bytes: inout [UInt8], number: Int, pageBytes: inout Int) {
        var line = bytes
        if line.last == 0x0D { line.removeLast() }
        var suffix = ""
        if line.count > ReadFileTool.maxLineBytes {
            line = Array(line.prefix(ReadFileTool.maxLineBytes))
            suffix = " […line cut at \(ReadFileTool.maxLineBytes) bytes]"
            cutLines += 1
        }
        if String(validating: line, as: UTF8.self) == nil { invalidUTF8 = true }
        let text = String(decoding: line, as: UTF8.self) + suffix
        lines.append((number, text))
        pageBytes += text.utf8.count
        if pageBytes >= ReadFileTool.maxPageBytes { stoppedForSize = true }
    }

    func render() -> String {
        if totalBytes == 0 { return "\(display) is empty (0 bytes)." }
        if lines.isEmpty {
            return "\(display) has \(totalLines) lines; offset \(offset) is past the end. Use an offset from 1 to \(totalLines)."
        }
        let width = max(6, String(lines.last!.number).count)
        var text = lines.map { entry in
            String(repeating: " ", count: width - String(entry.number).count) + "\(entry.number)\t\(entry.text)"
        }.joined(separator: "\n")
        let last = lines.last!.number
        var footer = "[\(display): lines \(lines.first!.number)-\(last) of \(totalLines), \(totalBytes) bytes"
        if last < totalLines { footer += "; more follows: read on with offset \(last + 1)" }
        footer += "]"
        if last == totalLines && !endsWithNewline { text += "\n(no newline at end of file)" }
        if invalidUTF8 { text += "\n(the file is not valid UTF-8: invalid bytes are shown as �)" }
        if cutLines > 0 { text += "\n(\(cutLines) long line(s) cut at \(ReadFileTool.maxLineBytes) bytes)" }
        return text + "\n" + footer
    }
}
