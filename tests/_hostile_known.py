"""Known escapes of tests/test_hostile_inputs.py, one per (entry point, parameter).

Each key names a parameter through which some hostile value still escapes as a non-
CoreEngineError; the value says which exceptions. The test is strict: when nothing escapes
through a listed parameter any more, it fails until the line is removed.
"""

KNOWN_ESCAPES: dict[str, str] = {
    'Allocation(kwarg-typo)': 'TypeError',
    'CCXTBroker(exchange_id)': 'AttributeError',
    'CCXTBroker(keys)': 'AttributeError',
    'CCXTBroker(session)': 'AttributeError',
    'CCXTProvider(config)': 'TypeError, ValueError',
    'CCXTSession(config)': 'TypeError, ValueError',
    'CCXTSession(configure)': 'TypeError',
    'CCXTSession(keys)': 'AttributeError',
    'CCXTSession(seed)': 'TypeError',
    'FeatureCache(kwarg-typo)': 'TypeError',
    'KeyRing(exchange)': 'TypeError',
    'KeyRing(keys)': 'TypeError',
    'SweepResult(evaluated)': 'AttributeError',
    'SweepResult(frame)': 'AttributeError',
    'SweepResult(ids)': 'AttributeError',
    'SweepResult(skipped)': 'AttributeError',
    'SweepResult(sweep)': 'AttributeError',
    'align_to_base(base)': 'AttributeError',
    'align_to_base(higher)': 'AttributeError',
    'align_to_base(values)': 'AttributeError, TypeError, ValueError',
    'candles_from_rows(rows)': 'TypeError',
    'candles_from_rows(timeframe)': 'TypeError',
    'config_id(backtest)': 'TypeError, ValueError',
    'config_id(fingerprint)': 'TypeError, ValueError',
    'config_id(strategy)': 'TypeError, ValueError',
}
