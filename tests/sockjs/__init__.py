"""
Tests for L{wsproto_tw.sockjs}.
"""
