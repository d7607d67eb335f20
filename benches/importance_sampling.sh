#!/usr/bin/env bash
# Variance reduction for far tails: the sample book at 99.9 %, with normal and with
# Student-t shocks, plain Monte Carlo against importance sampling, printing each run's
# 99.9 % VaR and ES with their standard errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
normal="target/fund_tail_normal.toml"
student="target/fund_tail_student.toml"
sed -e 's/^confidence = .*/confidence = [0.999]/' -e 's#^file = "#file = "../scenarios/#' \
    scenarios/fund.toml > "$student"
sed -e 's/^distribution = "student-t"/distribution = "normal"/' -e '/^dof = /d' \
    "$student" > "$normal"
printf '%-10s %-24s %10s %24s %24s\n' model method paths "VaR 99.9% ± s.e." "ES 99.9% ± s.e."
for scenario in "$normal" "$student"; do
  model=$(grep -o 'normal\|student-t' <<< "$(grep '^distribution' "$scenario")")
  for paths in 20000 200000 2000000; do
    for flag in "" "--importance-sampling"; do
      [ -n "$flag" ] && [ "$paths" -gt 200000 ] && continue
      line=$(target/release/tailrisk run "$scenario" --paths "$paths" $flag | grep '99.90%')
      read -r _ var var_se es es_se <<< "$line"
      printf '%-10s %-24s %10s %24s %24s\n' "$model" "${flag:-plain}" "$paths" "$var ± $var_se" "$es ± $es_se"
    done
  done
done
