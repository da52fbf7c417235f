//! Declarative macros for the two shapes Mesos JSON uses everywhere: enums written as
//! their names, and tagged unions written as `{"type":"X","x":{…}}`.

/// An enum serialised as its Mesos name. Unknown names are a parse error; use
/// `crate::mesos::lenient_enum` on optional fields where Mesos drops unknown names.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The Mesos wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }

            /// Parses a Mesos wire name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($wire => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::from_name(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} value '{}'", stringify!($name), name
                    ))
                })
            }
        }
    };
}

/// A tagged union `{"type":"NAME","payload_key":{…}}`. Payload variants carry one value;
/// bare variants (HEARTBEAT, SHUTDOWN…) carry none; optional variants take their payload's
/// `Default` when it is absent (REVIVE, SUPPRESS). A missing required payload is a parse
/// error naming the expected key, as Mesos reports it.
macro_rules! tagged_union {
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident via $env:ident {
            payload { $($(#[$pmeta:meta])* $pv:ident($pty:ty) = $ptag:literal, $pkey:ident;)* }
            $(optional { $($(#[$ometa:meta])* $ov:ident($oty:ty) = $otag:literal, $okey:ident;)* })?
            bare { $($(#[$bmeta:meta])* $bv:ident = $btag:literal;)* }
        }
    ) => {
        $(#[$meta])*
        // Messages are built, sent and dropped at once; boxing the big variants would buy
        // nothing but an allocation.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $name {
            $($(#[$pmeta])* $pv($pty),)*
            $($($(#[$ometa])* $ov($oty),)*)?
            $($(#[$bmeta])* $bv,)*
        }

        impl $name {
            /// The Mesos `type` name of this variant.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($name::$pv(_) => $ptag,)*
                    $($($name::$ov(_) => $otag,)*)?
                    $($name::$bv => $btag,)*
                }
            }
        }

        #[derive(serde::Deserialize)]
        struct $env {
            #[serde(rename = "type")]
            kind: Option<String>,
            $(#[serde(default)] $pkey: Option<$pty>,)*
            $($(#[serde(default)] $okey: Option<$oty>,)*)?
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                match self {
                    $($name::$pv(p) => {
                        m.serialize_entry("type", $ptag)?;
                        m.serialize_entry(stringify!($pkey), p)?;
                    })*
                    $($($name::$ov(p) => {
                        m.serialize_entry("type", $otag)?;
                        m.serialize_entry(stringify!($okey), p)?;
                    })*)?
                    $($name::$bv => m.serialize_entry("type", $btag)?,)*
                }
                m.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                let env = $env::deserialize(d)?;
                let kind = env.kind.ok_or_else(|| D::Error::custom("Expecting 'type' to be present"))?;
                match kind.as_str() {
                    $($ptag => env.$pkey.map($name::$pv).ok_or_else(|| {
                        D::Error::custom(concat!("Expecting '", stringify!($pkey), "' to be present"))
                    }),)*
                    $($($otag => Ok($name::$ov(env.$okey.unwrap_or_default())),)*)?
                    $($btag => Ok($name::$bv),)*
                    other => Err(D::Error::custom(format!("unknown type '{other}'"))),
                }
            }
        }
    };
}
