"""Where the tests find the repository and the data kept beside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Datasets and golden payloads live in shared/ beside the repository; a git worktree
# sits one level deeper (beside the checkout, in a folder of worktrees), so the
# grandparent is looked at too.
SHARED = next(
    (parent / "shared" for parent in ROOT.parents[:2] if (parent / "shared").is_dir()),
    ROOT.parent / "shared",
)
