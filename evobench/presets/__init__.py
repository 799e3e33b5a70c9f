"""Named run presets (YAML): `evobench run --preset NAME`."""
