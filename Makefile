# The two commands of the README. Each installs what it needs first (tools/setup.sh, idempotent).
.PHONY: setup test up synth bench

# Python's bytecode cache on, as Python ships it: an environment that turns it off makes every `lastmile`
# process (the suite starts hundreds) recompile the project's ~150 modules. The cache is Python's own,
# checked against each source file, and ignored by git.
unexport PYTHONDONTWRITEBYTECODE

setup:
	@tools/setup.sh

test: setup
	.venv/bin/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

up: setup
	tools/up.sh

synth: setup
	.venv/bin/lastmile synth --all

bench: setup
	.venv/bin/python tools/bench_synth.py
	.venv/bin/python tools/bench_engine.py
	.venv/bin/python tools/bench_drift.py
