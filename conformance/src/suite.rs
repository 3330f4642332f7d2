//! The macro that turns a harness into one `#[test]` per behaviour, and the registry of
//! behaviours.
//!
//! The list of behaviours is written once, in `__behaviours!`; the generated tests and
//! [`behaviours`] both expand from it, so they cannot drift apart.

use crate::{Behaviour, Harness};

/// Generates one `#[test]` per behaviour for a [`Harness`], grouped in modules named
/// after the behaviour groups, so that a failure names the behaviour
/// (`basics::round_trips_are_byte_exact`). Capabilities decide skips; a skipped
/// behaviour passes and prints why on standard error.
///
/// Invoke it once per module (wrap further invocations in their own `mod`):
///
/// ```ignore
/// conformance::suite!(MyHarness);
/// // Engines shared across processes name their worker binary (see `conformance::worker`):
/// conformance::suite!(MyHarness, worker = env!("CARGO_BIN_EXE_my-worker"));
/// ```
#[macro_export]
macro_rules! suite {
    ($harness:ty $(,)?) => {
        $crate::__behaviours!(__suite_tests { $harness ; [] });
    };
    ($harness:ty, worker = $worker:expr $(,)?) => {
        $crate::__behaviours!(__suite_tests { $harness ; [$worker] });
    };
}

/// The list of behaviours, handed to `$callback` as `group [name name ...] ...`.
#[doc(hidden)]
#[macro_export]
macro_rules! __behaviours {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            basics [
                missing_key_is_none
                round_trips_are_byte_exact
                keys_are_independent
                invalid_keys_are_rejected
                delete_is_idempotent
                two_handles_see_each_others_writes
                stats_count_reads_hits_and_writes
            ]
            write_modes [
                create_only_on_live_key_fails
                create_only_over_expired_key_succeeds
                replace_only_never_resurrects
                stale_compare_and_set_fails
                versions_are_never_reused
                concurrent_creates_one_wins
                create_only_after_touch_fails
            ]
            expiry [
                exact_boundary
                no_expiry
                default_ttl_applies
                past_expiry
                expired_is_absent_everywhere
                touch_extends_and_shortens
                purge_counts
                keep_in_update_preserves_expiry
                far_future_expiries_stay_live
                purge_keeps_entries_until_their_expiry
            ]
            update [
                concurrent_increments_through_update
                concurrent_increments_through_compare_and_set
                invocation_count_honours_capability
                panic_in_closure_leaves_key_unchanged
                optimistic_retries_are_bounded
            ]
            capacity [
                too_large_changes_nothing
                expired_entries_are_reclaimed_first
                live_evictions_are_reported
                never_evict_live_gives_no_space
                values_are_never_torn_under_eviction
                too_large_is_checked_before_the_mode
            ]
            concurrency [
                no_interference_between_keys
                no_torn_reads
                delete_racing_update_never_resurrects
                two_handles_increment_exactly
            ]
            processes [
                children_see_parent_writes
                processes_increment_exactly
                simultaneous_first_open_initialises_once
                killed_writer_stalls_nobody
                data_survives_reopen
                corrupt_or_incompatible_file_is_an_error
            ]
            errors [
                errors_are_send_sync_static
                unreachable_backend_is_an_error
            ]
            inspect [
                take_returns_the_entry_once
                concurrent_takes_one_wins
                scan_visits_exactly_the_live_entries
                scan_under_writes_sees_every_stable_entry_once
                clear_removes_every_entry
            ]
            lifecycle [
                session_round_trip_non_ascii
                zero_expiry_is_expired_at_once
                id_rotation_moves_the_data
            ]
            model [
                roomy_store
                with_default_ttl
                small_store_lru
                small_store_never_evict_live
            ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ({ $harness:ty ; [$($worker:expr)?] } $( $group:ident [ $($name:ident)* ] )*) => {
        #[allow(dead_code)]
        type __ConformanceHarness = $harness;

        #[allow(dead_code)]
        fn __conformance_worker() -> ::core::option::Option<&'static str> {
            ::core::option::Option::None $( .or(::core::option::Option::Some($worker)) )?
        }

        $(
            mod $group {
                use $crate::behaviours::$group as __group;
                $(
                    #[test]
                    fn $name() {
                        $crate::run::<super::__ConformanceHarness>(
                            concat!(module_path!(), "::", stringify!($name)),
                            __group::$name::<super::__ConformanceHarness>,
                            super::__conformance_worker(),
                        );
                    }
                )*
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __registry {
    ({ $h:ty } $( $group:ident [ $($name:ident)* ] )*) => {
        vec![ $( $(
            $crate::Behaviour::<$h>::new(
                concat!(stringify!($group), "::", stringify!($name)),
                $crate::behaviours::$group::$name::<$h>,
            ),
        )* )* ]
    };
}

/// Every behaviour of the suite for `H`, named `group::name` as the generated tests are.
pub fn behaviours<H: Harness>() -> Vec<Behaviour<H>> {
    crate::__behaviours!(__registry { H })
}

/// The behaviour named `group::name`, if there is one.
pub fn behaviour<H: Harness>(name: &str) -> Option<Behaviour<H>> {
    behaviours::<H>().into_iter().find(|b| b.name == name)
}
