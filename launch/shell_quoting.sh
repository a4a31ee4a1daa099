# Shared by launch/tpu.sh and launch/gpu_local.sh (sourced; PROG set by the caller).
# launch/slurm.sbatch keeps its own copy: sbatch runs a spooled copy of the script, away from
# this directory.

die_usage() { echo "$PROG: error: $* (see $PROG --help)" >&2; exit 2; }

# One argument, quoted for a shell where needed; --flag=value keeps its flag unquoted.
quote_arg() {
  local a="$1"
  if [[ -n "$a" && "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$a"
  elif [[ "$a" =~ ^(--[A-Za-z0-9_.-]+=)(.*)$ ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
    quote_arg "${BASH_REMATCH[2]}"
  else
    printf "'%s'" "${a//\'/\'\\\'\'}"
  fi
}

# Arguments as one shell command line.
shell_join() {
  local out="" a
  for a in "$@"; do out+="${out:+ }$(quote_arg "$a")"; done
  printf '%s\n' "$out"
}
