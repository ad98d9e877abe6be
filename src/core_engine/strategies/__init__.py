"""core_engine.strategies"""
