//! `stratus sim`: a local Strettch Cloud sandbox (work in progress).
