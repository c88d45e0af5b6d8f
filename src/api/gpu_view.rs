//! `GpuView` from JSON without serde's `flatten`: the wire GPU's fields and
//! the view's own (`allocated_to`, `idle_allocated`, `unhealthy`,
//! `mig_allocated`) share one object. `flatten` buffers every value into an
//! intermediate tree and reads the GPU from that; here the view's keys are
//! taken out as they come and every other key goes straight to the GPU.

use super::cluster::{Allocation, GpuView, SliceAllocation};
use jazari_wire::Gpu;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The view's own fields, filled while the GPU reads the rest.
#[derive(Default)]
struct Own {
    allocated_to: Option<Option<Allocation>>,
    idle_allocated: Option<bool>,
    unhealthy: Option<bool>,
    mig_allocated: Option<Vec<SliceAllocation>>,
}

/// The object's entries as the GPU sees them: the view's keys taken out.
struct GpuEntries<'a, A> {
    map: A,
    own: &'a mut Own,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for GpuEntries<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(Key(key)) = self.map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "allocated_to" => self.own.allocated_to = Some(self.map.next_value()?),
                "idle_allocated" => self.own.idle_allocated = Some(self.map.next_value()?),
                "unhealthy" => self.own.unhealthy = Some(self.map.next_value()?),
                "mig_allocated" => self.own.mig_allocated = Some(self.map.next_value()?),
                _ => return seed.deserialize(key.as_ref().into_deserializer()).map(Some),
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key, borrowed from the input where it can be (no escapes).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct K;
        impl<'de> Visitor<'de> for K {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(K)
    }
}

impl<'de> Deserialize<'de> for GpuView {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GpuView;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a GPU of the cluster view")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<GpuView, A::Error> {
                let mut own = Own::default();
                let gpu = Gpu::deserialize(de::value::MapAccessDeserializer::new(GpuEntries { map, own: &mut own }))?;
                Ok(GpuView {
                    gpu,
                    allocated_to: own.allocated_to.ok_or_else(|| de::Error::missing_field("allocated_to"))?,
                    idle_allocated: own.idle_allocated.ok_or_else(|| de::Error::missing_field("idle_allocated"))?,
                    unhealthy: own.unhealthy.ok_or_else(|| de::Error::missing_field("unhealthy"))?,
                    mig_allocated: own.mig_allocated.unwrap_or_default(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_view_reads_back_what_it_wrote() {
        let g = GpuView {
            gpu: Gpu {
                index: 3,
                uuid: Some("GPU-1".into()),
                util_gpu_pct: Some(40),
                processes: vec![jazari_wire::Process { pid: 7, job: Some("42".into()), ..Default::default() }],
                ..Default::default()
            },
            allocated_to: Some(Allocation {
                job: Some("42".into()),
                institute: "i".into(),
                account: None,
                user: Some("u".into()),
            }),
            idle_allocated: true,
            unhealthy: false,
            mig_allocated: vec![],
        };
        let json = serde_json::to_string(&g).unwrap();
        let back: GpuView = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.gpu, g.gpu);
        // An allocation of null is null, not missing; a missing one is an error naming it.
        let none: GpuView = serde_json::from_str(
            r#"{"index":0,"health":"ok","allocated_to":null,"idle_allocated":false,"unhealthy":true}"#,
        )
        .unwrap();
        assert!(none.allocated_to.is_none() && none.unhealthy);
        let err =
            serde_json::from_str::<GpuView>(r#"{"index":0,"health":"ok","idle_allocated":false,"unhealthy":true}"#)
                .unwrap_err();
        assert!(err.to_string().contains("allocated_to"), "{err}");
        // A field neither knows (a newer collector's) is passed over, as with `flatten`.
        let newer: GpuView = serde_json::from_str(
            r#"{"index":1,"health":"ok","fan_rpm":[1,2],"allocated_to":null,"idle_allocated":false,"unhealthy":false}"#,
        )
        .unwrap();
        assert_eq!(newer.gpu.index, 1);
    }
}
