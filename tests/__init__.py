"""Tests for the checkout and payments backend."""
