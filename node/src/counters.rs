//! Declaring counters: each field with its Prometheus name and help on one line, so adding a
//! counter is one line where it is counted (`/metrics` lists them all through `counters()`).

/// Declares a struct of `AtomicU64` counters, each with its metric name and help, with
/// `counters()` listing them; `also { ... }` adds fields that are not plain counters.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident => $metric:literal, $help:literal; )*
        }
        $( also { $( $(#[$ometa:meta])* $other:ident : $oty:ty ),* $(,)? } )?
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: std::sync::atomic::AtomicU64, )*
            $( $( $(#[$ometa])* pub $other: $oty, )* )?
        }

        impl $name {
            /// Every counter with its metric name and help, for `/metrics`.
            pub fn counters(
                &self,
            ) -> Vec<(&'static str, &'static str, &std::sync::atomic::AtomicU64)> {
                vec![$( ($metric, $help, &self.$field) ),*]
            }
        }
    };
}

pub(crate) use counters;

#[cfg(test)]
mod tests {
    counters! {
        struct Example {
            one => "example_one_total", "The first.";
            two => "example_two_total", "The second.";
        }
        also { note: String }
    }

    #[test]
    fn counters_list_every_field_with_its_name_and_help() {
        let example = Example::default();
        example
            .two
            .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        let listed: Vec<_> = example
            .counters()
            .into_iter()
            .map(|(name, help, value)| {
                (name, help, value.load(std::sync::atomic::Ordering::Relaxed))
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("example_one_total", "The first.", 0),
                ("example_two_total", "The second.", 2)
            ]
        );
        assert!(example.note.is_empty());
    }
}
