"""The core every other part builds on: the hook specifications, component interfaces, registry,
plugin discovery, recipe configuration and the error types. Imports nothing else of ganforge."""
