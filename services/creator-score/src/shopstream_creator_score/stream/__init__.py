"""The Faust side: tables of creator state and the agents that keep them current."""
