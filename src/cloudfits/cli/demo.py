"""``cloudfits demo``: the TESS tutorial against a local S3 server it starts itself."""

from __future__ import annotations

import argparse

from .tutorial import run_demo

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits demo``."""
    parser.add_argument("--frames", type=int, default=50, help="frames in the cube (default 50)")
    parser.add_argument("--size", type=int, default=128, help="cube rows and columns (default 128)")


def run(args: argparse.Namespace) -> int:
    """Run the tutorial; it prints what each step read."""
    return run_demo(frames=args.frames, size=args.size)
