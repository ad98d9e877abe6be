"""core_engine.features"""
