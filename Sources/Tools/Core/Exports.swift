// Every front door of Tools speaks JSONValue; importing Tools brings it along.
@_exported import JSONCore
