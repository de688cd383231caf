"""sbatch templates rendered by shared/slurm.py (a package so that they ship with the wheel)."""
