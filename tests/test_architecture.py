"""The package's shape, checked: the layer order (function-level imports included), no import
cycles between modules or packages, leaf modules stay leaves, the shipped configs import only
config schemas, the data layer never loads Flax, and no module outside objectives/ switches on
an objective's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jaxlm.objectives import OBJECTIVES

PACKAGE = Path(__file__).resolve().parents[1] / "jaxlm"
LEAVES = ("jaxlm.errors", "jaxlm.model.masks", "jaxlm.model.cache", "jaxlm.data.special_tokens",
          "jaxlm.stats", "jaxlm.eval.ngram", "jaxlm.eval.blimp_data", "jaxlm.studies.power_law",
          "jaxlm.interop.hf_layouts")
# Each layer imports only from its own and the layers before it (docs/design.md).
LAYERS = (
  ("jaxlm.errors",),
  ("jaxlm.config",),
  ("jaxlm.storage", "jaxlm.sharding", "jaxlm.distributed", "jaxlm.stats", "jaxlm.lease"),
  ("jaxlm.data", "jaxlm.model"),
  ("jaxlm.objectives",),
  ("jaxlm.preflight",),
  ("jaxlm.train",),
  ("jaxlm.interop",),
  ("jaxlm.api", "jaxlm.generate", "jaxlm.scoring"),
  ("jaxlm.eval",),
  ("jaxlm.finetune",),
  ("jaxlm.studies",),
  ("jaxlm.cli", "jaxlm.cli_handlers", "jaxlm.__main__", "jaxlm"),
)
CONFIGS = PACKAGE.parent / "configs"


def _modules() -> dict[str, Path]:
  found = {}
  for file in PACKAGE.rglob("*.py"):
    parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
    if "configs" in parts:
      continue  # user config files, loaded by path
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    found[name] = file
  return found


MODULES = _modules()


def _imports(file: Path, *, top_level_only: bool = True) -> set[str]:
  """The jaxlm modules `file` imports at module level (function-level imports are deferred on
  purpose: they are how a heavy or optional dependency loads only when used)."""
  tree = ast.parse(file.read_text())
  nodes = tree.body if top_level_only else list(ast.walk(tree))
  found = set()
  for node in nodes:
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names if a.name.startswith("jaxlm")}
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxlm"):
      for alias in node.names:
        sub = f"{node.module}.{alias.name}"
        found.add(sub if sub in MODULES else node.module)
  return {m for m in found if m in MODULES}


def _layer(module: str) -> int:
  best = max((prefix for layer in LAYERS for prefix in layer
              if module == prefix or module.startswith(prefix + ".")), key=len)
  return next(i for i, layer in enumerate(LAYERS) if best in layer)


def test_every_module_has_a_layer():
  assert all(_layer(name) is not None for name in MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_layer_order(name):
  upward = [m for m in _imports(MODULES[name], top_level_only=False) if _layer(m) > _layer(name)]
  assert not upward, f"{name} (layer {_layer(name)}) imports from later layers: {upward}"


def test_no_package_level_cycles():
  def package(module: str) -> str:
    return ".".join(module.split(".")[:2])

  graph: dict[str, set[str]] = {}
  for name, file in MODULES.items():
    graph.setdefault(package(name), set()).update(
      package(m) for m in _imports(file, top_level_only=False) if package(m) != package(name))
  reach = {p: set(graph[p]) for p in graph}
  for _ in graph:  # transitive closure
    for p in reach:
      reach[p] |= {q for r in list(reach[p]) for q in reach.get(r, ())}
  cycles = sorted(p for p in reach if p in reach[p])
  assert not cycles, f"package-level import cycles through {cycles}"


@pytest.mark.parametrize("file", sorted(CONFIGS.rglob("*.py")), ids=lambda f: f.name)
def test_shipped_configs_import_only_config_schemas(file):
  allowed = ("jaxlm.config", "jaxlm.configs", "jaxlm.finetune.config", "jaxlm.studies.config")
  for node in ast.walk(ast.parse(file.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxlm"):
      assert node.module in allowed, f"{file.name} imports {node.module}"


def test_no_import_cycles():
  graph = {name: _imports(file) for name, file in MODULES.items()}
  state: dict[str, int] = {}

  def visit(node: str, path: list[str]) -> None:
    state[node] = 1
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt):] + [node, nxt])
                    if nxt in path else f"import cycle through {node} -> {nxt}")
      if nxt not in state:
        visit(nxt, path + [node])
    state[node] = 2

  for name in sorted(graph):
    if name not in state:
      visit(name, [])


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_nothing_from_jaxlm(leaf):
  assert _imports(MODULES[leaf], top_level_only=False) == set()


def test_the_data_layer_never_imports_flax():
  def closure(name: str, seen: set[str]) -> set[str]:
    for nxt in _imports(MODULES[name]):
      if nxt not in seen:
        seen.add(nxt)
        closure(nxt, seen)
    return seen

  for name in (n for n in MODULES if n.startswith("jaxlm.data")):
    for module in closure(name, {name}):
      source = MODULES[module].read_text()
      assert "from flax" not in source and "import flax" not in source, (name, module)


def test_no_objective_name_is_compared_outside_objectives():
  names = set(OBJECTIVES)
  offenders = []
  for module, file in MODULES.items():
    if module.startswith("jaxlm.objectives"):
      continue
    for node in ast.walk(ast.parse(file.read_text())):
      if isinstance(node, ast.Compare):
        constants = [n for side in [node.left, *node.comparators] for n in ast.walk(side)
                     if isinstance(n, ast.Constant)]
        if any(c.value in names for c in constants):
          offenders.append(f"{file.relative_to(PACKAGE.parent)}:{node.lineno}")
  assert not offenders, f"objective names compared outside objectives/: {offenders}"
