// Placeholder until the program is written; replaced by its owner.
int main() { return 1; }
