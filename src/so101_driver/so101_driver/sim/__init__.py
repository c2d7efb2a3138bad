"""The simulated SO-101 (MuJoCo): scene, So101Sim, the sim backend, a scripted picker."""
