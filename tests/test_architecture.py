"""docs/architecture.md's rules about what may import what, checked on the source."""

import ast

from helpers import REPO

PACKAGE = REPO / "src" / "maskgit"


def _import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (at the top or inside functions)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = package = parts[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                deps.add(".".join(base + ([node.module] if node.module else [])))
        graph[".".join(parts)] = deps
    return graph


def test_no_import_cycles():
    graph = _import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if dep not in graph:
                continue
            assert state.get(dep) != 1, "import cycle: " + " -> ".join(path[path.index(dep):] + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_library_never_imports_training_or_the_command_line():
    for module, deps in _import_graph().items():
        if module.startswith(("maskgit.train", "maskgit.cli")):
            continue
        assert not any(d.startswith(("maskgit.train", "maskgit.cli")) for d in deps), module
        if not module.startswith(("maskgit.demo",)):
            assert not any(d.startswith("maskgit.demo") for d in deps), module


def test_the_lowest_modules_stay_low():
    graph = _import_graph()
    assert graph["maskgit.atomic"] == set() and graph["maskgit.errors"] == set() and graph["maskgit.windows"] == set()
    assert graph["maskgit.holes"] <= {"maskgit.atomic", "maskgit.errors"}
    for rules in ("orders", "correctors", "critics"):  # tables the config checks names against
        assert graph[f"maskgit.{rules}"] == set(), rules


def test_per_image_generators_come_from_one_helper():
    """The seeding rules the CLI's results depend on (image i of a run seeded s), kept as they were."""
    import torch

    from maskgit.seeding import generators_from, image_generator

    assert torch.equal(torch.rand(3, generator=image_generator(2, 5)), torch.rand(3, generator=torch.Generator().manual_seed(2_000_011)))
    one_at_a_time = torch.Generator().manual_seed(9)
    expected = [torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=one_at_a_time))) for _ in range(3)]
    got = generators_from(torch.Generator().manual_seed(9), 3)
    assert all(torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b)) for a, b in zip(got, expected))
