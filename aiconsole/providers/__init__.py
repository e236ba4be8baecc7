"""Vision providers behind one small Protocol, their dated pricing tables, and the local emulator."""
