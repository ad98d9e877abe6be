"""core_engine.backtest"""
