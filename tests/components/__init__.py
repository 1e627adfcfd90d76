"""Home Assistant tests of the Amp Guard integration."""
