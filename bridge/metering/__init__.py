"""Metering: sources, signal processing, the reading pipeline and the status rules.

Sources are the emulator, the ADC front-end and Modbus meters; outputs never import this
package's computations, they serialise the readings it makes.
"""
