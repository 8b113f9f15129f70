"""What staff do at the desk, for the command line and the console alike."""
