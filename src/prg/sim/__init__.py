"""MuJoCo execution of a 6-DoF grasp on a PRG-Synth scene: the gripper, one trial and its outcome, reference runs
over a dataset and videos. Knows nothing about models: a predictor enters as a function that returns rectangles."""
