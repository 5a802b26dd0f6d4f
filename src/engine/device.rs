//! Picking the compute device. CPU always works; `cuda` and `metal` need the matching cargo feature,
//! and asking for one that was not compiled in is a clear error rather than a silent CPU fallback.

use crate::engine::EngineError;
use candle_core::Device;

/// The device named `cpu`, `cuda` (or `cuda:N`) or `metal`.
pub fn parse_device(name: &str) -> Result<Device, EngineError> {
    let (kind, ordinal) = match name.split_once(':') {
        Some((k, n)) => {
            let n = n.parse::<usize>().map_err(|_| EngineError::Request(format!("bad device ordinal in `{name}`")))?;
            (k, n)
        }
        None => (name, 0),
    };
    let unavailable = |feature: &str| {
        EngineError::Request(format!(
            "device `{name}` is not available: build unitcoder with `--features {feature}` on a machine that has one"
        ))
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => {
            Device::new_cuda(ordinal).map_err(|e| EngineError::Request(format!("device `{name}`: {e}")))
        }
        "cuda" => Err(unavailable("cuda")),
        "metal" if cfg!(feature = "metal") => {
            Device::new_metal(ordinal).map_err(|e| EngineError::Request(format!("device `{name}`: {e}")))
        }
        "metal" => Err(unavailable("metal")),
        other => Err(EngineError::Request(format!("unknown device `{other}` (expected cpu, cuda or metal)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_unknown_devices_are_rejected() {
        assert!(parse_device("cpu").is_ok_and(|d| d.is_cpu()));
        assert!(parse_device("tpu").unwrap_err().to_string().contains("unknown device"));
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda").unwrap_err().to_string().contains("--features cuda"));
    }
}
