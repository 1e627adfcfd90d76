"""Custom components folder, a package so that tests can import the integration."""
