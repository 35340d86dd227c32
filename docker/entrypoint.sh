#!/usr/bin/env bash
# The image's entry point. Without arguments: the demo, as `make demo` runs it (a small HPO
# study on the synthetic data, its test evaluation, the listing), in ./experiments of the
# working directory (/workspace: `make docker-run` mounts your checkout there).
# With arguments: one command of the package, e.g. `train --config configs/demo.yaml` or
# `list_studies`: `python -m dataaug_multi_both.cli.<command> <arguments>`.
set -euo pipefail
PYTHON="${PYTHON:-python}"
COMMANDS="train hpo evaluate_study cleanup list_studies list_checkpoints"

if [ "$#" -eq 0 ]; then
    config=configs/hpo_demo.yaml  # yours when your checkout is mounted, else the bundled one
    [ -f "$config" ] || config="$("$PYTHON" -c 'import pathlib, dataaug_multi_both.configs as c
print(pathlib.Path(c.__file__).parent / "hpo_demo.yaml")')"
    "$PYTHON" -m dataaug_multi_both.cli.hpo --config "$config" --study-name demo \
        --study-dir experiments/study_demo
    "$PYTHON" -m dataaug_multi_both.cli.evaluate_study --study-dir experiments/study_demo
    exec "$PYTHON" -m dataaug_multi_both.cli.list_studies
fi
command="$1"
shift
case " $COMMANDS " in
    *" $command "*) exec "$PYTHON" -m "dataaug_multi_both.cli.$command" "$@" ;;
    *) echo "unknown command '$command'; one of: $COMMANDS" >&2; exit 2 ;;
esac
