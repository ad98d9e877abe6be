"""Known escapes of tests/test_hostile_inputs.py, one per (entry point, parameter).

Each key names a parameter through which some hostile value still escapes as a non-
CoreEngineError; the value says which exceptions. The test is strict: when nothing escapes
through a listed parameter any more, it fails until the line is removed.
"""

KNOWN_ESCAPES: dict[str, str] = {
}
