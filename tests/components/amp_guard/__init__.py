"""Tests of the Amp Guard integration."""
