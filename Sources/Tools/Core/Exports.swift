// Every front door of Tools speaks JSONValue; importing Tools brings it along.
@_exported import JSONCore
// Sessions are made on a Workspace and tools fail with ToolError: both come with Tools.
@_exported import WorkspaceAccess
