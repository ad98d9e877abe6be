"""core_engine.risk"""
