"""Training pipeline (installed as ``thinkjson_edge.train``).

Needs the ``train`` extra (torch, transformers, trl, peft). Nothing in the
runtime imports this package.
"""

from thinkjson_edge.environment import bound_openmp_spinning

# Before torch loads its OpenMP library: spinning threads made a CPU training step 5-10x
# slower beside another busy process.
bound_openmp_spinning()
