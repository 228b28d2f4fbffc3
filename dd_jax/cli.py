"""What every command-line entry point shares: one-line errors, quiet libraries."""
from __future__ import annotations

import ast
import contextlib
import logging as pylogging
import os
import re
import sys
from typing import Callable, Collection

from absl import app, flags, logging
import jax
import ml_collections
from ml_collections import config_flags

from dd_jax import distributed, progress
from dd_jax.errors import ConfigError, require


class _DropLibraryInfo(pylogging.Filter):
  """Orbax logs every save at INFO; keep its warnings, drop its chatter."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    noisy = "orbax" in record.pathname or "xla_bridge" in record.pathname
    return record.levelno >= pylogging.WARNING or not noisy


def setup_logging() -> None:
  logging.set_verbosity(logging.INFO)
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _DropLibraryInfo) for f in handler.filters):
    handler.addFilter(_DropLibraryInfo())


# XLA's persistent compilation cache: a program compiled once (by the memory planner, an
# earlier process of the same run, a resumed run) is read back instead of compiled again.
# DD_JAX_XLA_CACHE names the folder ("off": no cache); JAX_COMPILATION_CACHE_DIR, when
# set, is JAX's own and wins.
XLA_CACHE_ENV = "DD_JAX_XLA_CACHE"
XLA_CACHE_DEFAULT = os.path.join("~", ".cache", "dd_jax", "xla")
XLA_CACHE_MAX_BYTES = 4 * 2 ** 30   # least recently used programs are dropped beyond


def use_compilation_cache() -> str | None:
  """Turns on the persistent compilation cache for programs that take a second or more
  to compile; returns its folder (None when off)."""
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return os.environ["JAX_COMPILATION_CACHE_DIR"]
  folder = os.environ.get(XLA_CACHE_ENV, XLA_CACHE_DEFAULT)
  if folder.lower() in ("off", "0", "none", ""):
    return None
  folder = os.path.expanduser(folder)
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_compilation_cache_max_size", XLA_CACHE_MAX_BYTES)
  return folder


def _flag_of(argv: list[str], name: str) -> str:
  """The --config.<...> flag of `argv` that sets a field called `name`."""
  for arg in argv:
    flag = arg.split("=", 1)[0]
    if flag.startswith("--config.") and flag.rsplit(".", 1)[-1] == name:
      return flag
  return f"--config...{name}"


# What to give for a required flag left out.
MISSING_FLAG_FIXES = {
    "--config": "give --config=configs/<dataset>_<method>.py[:variant]",
    "--workdir": "give --workdir=<run folder>",
}


def flag_error(e: Exception, argv: list[str]) -> str:
  """One line for a command line whose flags or config file cannot be read."""
  text = str(e).strip()
  if isinstance(e, AttributeError):   # ml_collections: an override of an unknown field
    words = re.findall(r"'(\w+)'|\"(\w+)\"", text.replace("\\", ""))
    names = [a or b for a, b in words]
    unknown = names[0] if names else "?"
    hint = (f" (did you mean {names[1]}?)" if len(names) > 1 and "Did you mean" in text
            else "")
    return str(ConfigError(_flag_of(argv, unknown), f"no such config field{hint}",
                           "see docs/config.md for every field"))
  if isinstance(e, OSError) and "config file" in text:   # a --config file that is missing
    path = re.findall(r"No such file or directory: '([^']+)'", text)
    return str(ConfigError("--config", f"cannot load {path[0] if path else text.splitlines()[0]}",
                           "give a file in configs/ (configs/<dataset>_<method>.py[:variant])"))
  first = text.splitlines()[0] if text else type(e).__name__
  if isinstance(e, flags.UnrecognizedFlagError):   # a flag the command does not define
    return str(ConfigError(f"--{e.flagname}", "no such flag",
                           "--help lists the command's flags"))
  missing = re.search(r"Flag (--\w+) must have a value other than None", first)
  if missing:
    flag = missing.group(1)
    return str(ConfigError(flag, "not given", MISSING_FLAG_FIXES.get(
        flag, f"give {flag}=<value> (--help lists the flags)")))
  flag, _, problem = first.partition(": ")
  problem = problem.rstrip(".")
  flag = flag.removeprefix("flag ").split("=", 1)[0]
  if "Error whilst parsing config file" in problem:   # get_config raised: its last line
    last = [l for l in text.splitlines() if re.match(r"^\s*\w+Error: ", l)]
    problem = last[-1].strip().split(": ", 1)[1] if last else problem
    return str(ConfigError(flag, problem, "use a variant the file's docstring lists"))
  return str(ConfigError(flag or "flags", problem or first,
                         "give the field a value of its type (see docs/config.md)"))


# configs/ helpers, not experiment files
NOT_EXPERIMENTS = ("__init__", "common", "defaults", "papers", "reference", "variants")


def configs_folder() -> str:
  """configs/ of the working directory (the commands run from a checkout), else the one
  beside the installed package."""
  here = os.path.abspath("configs")
  return here if os.path.isdir(here) else os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def help_text(argv: list[str]) -> str:
  """--help: the command's docstring, its flags, and the chosen config file's docstring
  (its variants), or the config files there are."""
  main = sys.modules.get("__main__")
  ours = [f for module, defined in flags.FLAGS.flags_by_module_dict().items()
          if "dd_jax" in module or module == "__main__" for f in defined]
  lines = [((main.__doc__ if main else "") or "").strip(), "", "Flags:"]
  for f in sorted(ours, key=lambda f: f.name):
    if f.name == "config":
      lines += ["  --config=FILE[:VARIANTS]   an experiment config and its variants, e.g. "
                "configs/fashion_mnist_mtt.py:ipc=10",
                "  --config.SECTION.FIELD=V   one field changed (every field, its default "
                "and meaning: docs/config.md)"]
    else:
      lines.append(f"  --{f.name:<24} {f.help}")
  lines += ["  --helpfull                 absl's full list of flags", ""]
  if not any(f.name == "config" for f in ours):
    return "\n".join(lines).rstrip()
  given = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
  path = given.split(":", 1)[0]
  if path and os.path.isfile(path):
    with open(path) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or "(no docstring)"
    lines += [f"{path}:", *("  " + line for line in doc.splitlines())]
  else:
    folder = configs_folder()
    names = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py")
                   and f[:-3] not in NOT_EXPERIMENTS) if os.path.isdir(folder) else []
    lines += [f"Config files ({folder}; --config=<file> --help shows a file's variants):",
              *(f"  configs/{n}.py" for n in names)]
  return "\n".join(lines)


def module_name() -> str:
  """`dd_jax.experts` for `python -m dd_jax.experts`."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  name = spec.name if spec is not None else "dd_jax"
  return name[:-len(".__main__")] if name.endswith(".__main__") else name


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with the config file loaded here: a bad flag, an unknown
  field, a missing config file or a variant the file refuses is one line and exit 2.
  --help (-h) prints `help_text` and exits 0."""
  if any(a in ("--help", "-h", "-?") for a in argv[1:]):
    print(help_text(argv))
    sys.exit(0)
  try:
    rest = flags.FLAGS(argv)
    if "config" in flags.FLAGS:
      "seed" in flags.FLAGS.config   # pylint: disable=pointless-statement  (loads it now)
    return rest
  except (flags.Error, AttributeError, OSError, ValueError, TypeError, KeyError) as e:
    print(f"error: {flag_error(e, argv)}", file=sys.stderr)
    sys.exit(2)


@contextlib.contextmanager
def cli_errors():
  """Turns a ConfigError into one line on stderr and exit status 2."""
  try:
    yield
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def config_overrides(argv: list[str]) -> list[str]:
  """The fields `--config.<section>.<field>=...` flags of argv set ("distill.lr_img")."""
  return [a.split("=", 1)[0][len("--config."):] for a in argv
          if a.startswith("--config.")]


def check_sections_read(argv: list[str], reads: Collection[str], command: str) -> None:
  """Refuses a `--config.<section>...` flag whose section `command` does not read: a
  value that would be silently ignored."""
  for field in config_overrides(argv):
    section = field.split(".", 1)[0]
    require(section in reads, f"--config.{field}",
            f"python -m {command} does not read the {section} section (it reads "
            f"{', '.join(sorted(reads))})",
            "drop the flag, or give it to the command that uses it (docs/config.md)")


def run_with_config(command: Callable[[ml_collections.ConfigDict, str], str],
                    reads: Callable[[ml_collections.ConfigDict], Collection[str]]
                    | Collection[str] | None = None) -> None:
  """The whole of a `python -m dd_jax.<x>` entry point: --config and --workdir flags,
  quiet library logs, one-line errors; prints what `command(config, workdir)` returns.
  `reads`: the config sections the command reads (or a function of the config giving
  them); a flag setting a field of any other section is refused (None: no check)."""
  config_flags.DEFINE_config_file("config", None, "Experiment config file "
                                  "(configs/<file>.py[:variant]).", lock_config=True)
  flags.DEFINE_string("workdir", None, "The run folder (started again with the same "
                      "folder, a run resumes).")
  flags.mark_flags_as_required(["config", "workdir"])

  def main(argv):
    del argv
    setup_logging()
    with cli_errors():
      if reads is not None:
        config = flags.FLAGS.config
        check_sections_read(sys.argv, reads(config) if callable(reads) else reads,
                            module_name())
      distributed.initialize(flags.FLAGS.config)   # before JAX looks for devices
      cache = use_compilation_cache()
      logging.info("JAX %s, devices: %s, compilation cache: %s", jax.__version__,
                   jax.devices(), cache or f"off ({XLA_CACHE_ENV}=off)")
      with progress.Heartbeat():   # a line at least every 30 s, compiles included
        print(command(flags.FLAGS.config, flags.FLAGS.workdir))

  app.run(main, flags_parser=parse_flags)
