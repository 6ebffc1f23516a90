//! The allocator setting a rebuild runs with: `finops-replay` and the rebuild benchmark.
//!
//! Both run on mimalloc, which by default returns to the OS memory left unused for a second
//! (a *purge*). A rebuild allocates and frees pages of events and documents without pause,
//! so what was purged was faulted straight back in and zeroed, a huge page at a time: 9 % of
//! the rebuild process's CPU in a profile, and a 1 M-event rebuild 15–20 % slower than with
//! purging off, for the same peak memory (BENCHMARKS.md, session 31). A process that exits
//! when its command is done gains nothing from handing memory back first. The server keeps
//! the default: it runs for months, and its peaks should not stay resident.

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (`mimalloc.h`, the same in v2 and
/// v3; `libmimalloc-sys` names no constant for it): milliseconds before unused memory is
/// purged, `-1` never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns mimalloc's purging off for the rest of the process. Call first thing in `main`.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores one integer in mimalloc's option table, which mimalloc
    // reads whenever it next considers a purge; it touches no memory of ours and may be
    // called at any time, from any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    /// The option set is the purge delay: its default (1 000 ms in the mimalloc this links)
    /// reads back before, and `-1` after.
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_is_the_option_turned_off() {
        // SAFETY: reads one integer from mimalloc's option table.
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1_000, "option 15 is mimalloc's purge delay, 1 s by default");
        }
        super::keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
