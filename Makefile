# The two commands of the README. Each installs what it needs first (tools/setup.sh, idempotent).
.PHONY: setup test up synth bench

setup:
	@tools/setup.sh

test: setup
	.venv/bin/python -m pytest -n 2 --dist loadfile

up: setup
	tools/up.sh

synth: setup
	.venv/bin/lastmile synth --all

bench: setup
	.venv/bin/python tools/bench_synth.py
	.venv/bin/python tools/bench_engine.py
