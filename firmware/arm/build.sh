#!/usr/bin/env bash
# build.sh - compiles the firmware core for Cortex-M4 (STM32L4 class) with
# Debian's gcc-arm-none-eabi, -Os, newlib-nano, hard float (FPv4-SP), links
# it with the stub port (stub_port.c) into the 64 KB flash / 16 KB RAM
# budget of issue #11 (stm32l4.ld: over budget = link error) and prints
#   fw_flash_kb: N   (.isr_vector + .text + .rodata + .data image)
#   fw_ram_kb: N     (.data + .bss, the static device included; no heap)
# Exit status non-zero when the compiler is missing, the build fails or the
# budget is exceeded. Output in $FW_ARM_OUT (default build-arm/).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${FW_ARM_OUT:-$ROOT/build-arm}
CC=${ARM_CC:-arm-none-eabi-gcc}
SIZE=${ARM_SIZE:-arm-none-eabi-size}
FLASH_MAX_KB=64
RAM_MAX_KB=16

if ! command -v "$CC" >/dev/null; then
  echo "fw-arm: $CC not found (scripts/deps.sh installs gcc-arm-none-eabi)" >&2
  exit 1
fi
mkdir -p "$OUT"
CFLAGS=(-std=c11 -Os -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
        -ffunction-sections -fdata-sections -fno-common -ffreestanding
        -Wall -Wextra -Werror -Wshadow -Wdouble-promotion -Wconversion
        -Ifirmware/core)
objs=()
for src in firmware/core/fw_*.c firmware/arm/stub_port.c; do
  o=$OUT/$(basename "${src%.c}").o
  "$CC" "${CFLAGS[@]}" -c "$src" -o "$o"
  objs+=("$o")
done
"$CC" -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 --specs=nano.specs \
  -nostartfiles -Wl,--gc-sections -Wl,-Map="$OUT/fw.map" -T firmware/arm/stm32l4.ld \
  "${objs[@]}" -o "$OUT/fw.elf"
# Berkeley format: text (code + rodata + vectors), data, bss.
read -r text data bss _ < <("$SIZE" -B "$OUT/fw.elf" | awk 'NR == 2')
awk -v t="$text" -v d="$data" -v b="$bss" -v fm=$FLASH_MAX_KB -v rm=$RAM_MAX_KB 'BEGIN {
  f = (t + d) / 1024; r = (d + b) / 1024;
  printf "fw_flash_kb: %.1f\nfw_ram_kb: %.1f\n", f, r;
  if (f > fm || r > rm) { printf "fw-arm: over budget (%d KB flash, %d KB RAM)\n", fm, rm > "/dev/stderr"; exit 1 }
}'
