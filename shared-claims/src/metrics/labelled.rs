//! Counters split by one label whose values are a closed enum: the shape of every labelled
//! domain metric the services export (logins by outcome, refusals by reason, …). The label's
//! name is part of its type, so a series cannot be counted under a misspelt label, and
//! its values are the enum's variants, so the label set stays bounded.

use std::fmt::Debug;
use std::hash::Hash;

use prometheus_client::encoding::EncodeLabelValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// An enum whose variants are the values of one metric label named [`Label::NAME`].
pub trait Label: Debug + Clone + Hash + Eq + Send + Sync + EncodeLabelValue + 'static {
    /// The label's name in the exposition text.
    const NAME: &'static str;
}

/// One counter per value of `L`; clones share the counters.
#[derive(Debug, Clone)]
pub struct CountersBy<L: Label> {
    family: Family<[(&'static str, L); 1], Counter>,
}

impl<L: Label> Default for CountersBy<L> {
    fn default() -> Self {
        Self {
            family: Family::default(),
        }
    }
}

impl<L: Label> CountersBy<L> {
    /// New counters, registered in `registry` as `name` (exported as `name_total`).
    pub fn registered(registry: &mut Registry, name: &str, help: &str) -> Self {
        let counters = Self::default();
        registry.register(name, help, counters.family.clone());
        counters
    }

    /// Counts one event labelled `value`.
    pub fn inc(&self, value: L) {
        self.inc_by(value, 1);
    }

    /// Counts `count` events labelled `value`.
    pub fn inc_by(&self, value: L, count: u64) {
        self.family.get_or_create(&[(L::NAME, value)]).inc_by(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
    #[allow(non_camel_case_types)]
    enum Colour {
        red,
        blue,
    }

    impl Label for Colour {
        const NAME: &'static str = "colour";
    }

    #[test]
    fn each_value_is_its_own_series_under_the_labels_name() {
        let mut registry = Registry::default();
        let counters = CountersBy::<Colour>::registered(&mut registry, "paints", "Paints");
        counters.inc(Colour::red);
        counters.inc_by(Colour::red, 2);
        counters.clone().inc(Colour::blue);

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();

        assert!(text.contains(r#"paints_total{colour="red"} 3"#), "{text}");
        assert!(text.contains(r#"paints_total{colour="blue"} 1"#), "{text}");
    }
}
