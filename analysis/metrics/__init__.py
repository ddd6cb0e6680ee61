"""Structure metrics: lDDT, DockQ v2, ligand RMSD / lDDT-PLI, and the chain/residue/atom pairing."""
