# The PlatformIO environments that build and run offline (platformio.ini's default_envs).
# Here, not in host_sim.targets, so the CLI lists them without importing host_sim.
OFFLINE_ENVS = ("uno", "cortex_m4f", "rv32imc")
