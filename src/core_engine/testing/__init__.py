"""core_engine.testing"""
