"""mcu-anomaly: train anomaly detectors on the host, generate bit-exact C for microcontrollers."""

__version__ = "0.1.0"
