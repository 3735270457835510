//! Clerk: the Backend API client userhub talks to it with, its wire types, and an emulator
//! that speaks the same API for tests and local mode.

pub mod client;
pub mod emulator;
pub mod model;

pub use client::{ClerkClient, ClerkFailure, IfEmailTaken, NewClerkInvitation};
