#!/usr/bin/env bash
# Variance reduction for far tails at 99.9 %: the sample book with normal and with Student-t
# shocks, and a short straddle (two-sided tail) with normal shocks; plain Monte Carlo against
# importance sampling, printing each run's 99.9 % VaR and ES with their standard errors and,
# for weighted runs, the variance gain the run reports.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
normal="target/fund_tail_normal.toml"
student="target/fund_tail_student.toml"
straddle="target/straddle_tail.toml"
sed -e 's/^confidence = .*/confidence = [0.999]/' -e 's#^file = "#file = "../scenarios/#' -e 's#^surface = "#surface = "../scenarios/#' \
    scenarios/fund.toml > "$student"
sed -e 's/^distribution = "student-t"/distribution = "normal"/' -e '/^dof = /d' \
    "$student" > "$normal"
cat > target/straddle_positions.csv <<'CSV'
id,kind,underlying,quantity,venue,option_type,strike,expiry,implied_vol
short-call,option,BTC,-100,deribit,call,92000,2026-12-25,0.5
short-put,option,BTC,-120,deribit,put,92000,2026-12-25,0.5
CSV
sed -e 's#^file = "../scenarios/positions.csv"#file = "straddle_positions.csv"#' "$normal" > "$straddle"
printf '%-10s %-9s %-24s %10s %24s %24s %16s\n' book model method paths \
  "VaR 99.9% ± s.e." "ES 99.9% ± s.e." "gain VaR / ES"
for scenario in "$normal" "$student" "$straddle"; do
  model=$(grep -o 'normal\|student-t' <<< "$(grep '^distribution' "$scenario")")
  book=fund; [ "$scenario" = "$straddle" ] && book=straddle
  for paths in 20000 200000 2000000; do
    for flag in "" "--importance-sampling"; do
      [ -n "$flag" ] && [ "$paths" -gt 200000 ] && continue
      out=$(target/release/tailrisk run "$scenario" --paths "$paths" $flag -q)
      read -r _ var var_se es es_se <<< "$(grep '99.90%  ' <<< "$out")"
      gain=$(grep -o 'VaR ×[0-9.]*, ES ×[0-9.]*' <<< "$out" | tr -d 'VaRES×,' | awk '{print $1 " / " $2}' || true)
      printf '%-10s %-9s %-24s %10s %24s %24s %16s\n' "$book" "$model" "${flag:-plain}" "$paths" \
        "$var ± $var_se" "$es ± $es_se" "${gain:--}"
    done
  done
done
