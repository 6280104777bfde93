/* stub_port.c - the smallest Cortex-M4 port of the firmware core, for the
 * size check of firmware/arm/build.sh: a vector table, a reset handler, one
 * statically allocated device and a HAL whose functions do nothing (the
 * real drivers - ADS1115, SHT30, EC200S AT commands, flash - are the
 * board's, not the core's). Proves the core links with no OS and no heap.
 * Owns the one device. Thread: the only one. */
#include "fw_core.h"

#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;

    while(d < &_edata)
        *d++ = *s++;
    for(d = &_sbss; d < &_ebss;)
        *d++ = 0;
    main();
    for(;;) {
    }
}

void Default_Handler(void)
{
    for(;;) {
    }
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack),
    Reset_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    Default_Handler,
    0,
    0,
    0,
    0,
    Default_Handler,
    Default_Handler,
    0,
    Default_Handler,
    Default_Handler,
};

static volatile uint32_t ticks; /* SysTick would count here */

static uint32_t h_millis(void *c)
{
    (void)c;
    return ticks;
}
static uint32_t h_rtc(void *c)
{
    (void)c;
    return 1734320000u + ticks / 1000u;
}
static int h_gas(void *c, float *mv)
{
    (void)c;
    *mv = 350.0f;
    return FW_OK;
}
static int h_th(void *c, float *t, float *h, int *has)
{
    (void)c;
    *t = 25.0f;
    *h = 50.0f;
    *has = 1;
    return FW_OK;
}
static int h_bat(void *c, int *p)
{
    (void)c;
    *p = 90;
    return FW_OK;
}
static int h_modem(void *c)
{
    (void)c;
    return FW_OK;
}
static int h_rssi(void *c, int *d)
{
    (void)c;
    *d = -70;
    return FW_OK;
}
static int h_conn(void *c, const struct fw_mqtt_conn *m)
{
    (void)c;
    (void)m;
    return FW_OK;
}
static void h_disc(void *c)
{
    (void)c;
}
static int h_pub(void *c, const char *t, const void *p, size_t n, int q, int r, uint16_t *mid)
{
    (void)c;
    (void)t;
    (void)p;
    (void)n;
    (void)q;
    (void)r;
    if(mid)
        *mid = 1;
    return FW_OK;
}
static int h_sub(void *c, const char *t, int q)
{
    (void)c;
    (void)t;
    (void)q;
    return FW_OK;
}
static int h_rr(void *c, uint16_t s, uint8_t b[FW_REC_SIZE])
{
    (void)c;
    (void)s;
    memset(b, 0xFF, FW_REC_SIZE);
    return FW_OK;
}
static int h_rw(void *c, uint16_t s, const uint8_t b[FW_REC_SIZE])
{
    (void)c;
    (void)s;
    (void)b;
    return FW_OK;
}
static int h_re(void *c, uint16_t s)
{
    (void)c;
    (void)s;
    return FW_OK;
}
static int h_cr(void *c, void *b, size_t n)
{
    (void)c;
    memset(b, 0xFF, n);
    return FW_OK;
}
static int h_cw(void *c, const void *b, size_t n)
{
    (void)c;
    (void)b;
    (void)n;
    return FW_OK;
}
static int h_oo(void *c, const char *u)
{
    (void)c;
    (void)u;
    return FW_E_IO;
}
static int h_or(void *c, uint8_t *b, size_t n)
{
    (void)c;
    (void)b;
    (void)n;
    return 0;
}
static int h_ow(void *c, uint32_t o, const uint8_t *b, size_t n)
{
    (void)c;
    (void)o;
    (void)b;
    (void)n;
    return FW_OK;
}
static int h_of(void *c, int k)
{
    (void)c;
    (void)k;
    return FW_OK;
}
static void h_mb(void *c)
{
    (void)c;
}
static void h_mu(void *c, const uint8_t *p, size_t n)
{
    (void)c;
    (void)p;
    (void)n;
}
static void h_me(void *c, uint8_t o[16])
{
    (void)c;
    memset(o, 0, 16);
}
static void h_wdt(void *c)
{
    (void)c;
    *(volatile uint32_t *)0x40003000u = 0xAAAAu; /* IWDG_KR */
}
static void h_led(void *c, enum fw_led_color col, enum fw_led_mode m)
{
    (void)c;
    (void)col;
    (void)m;
}
static void h_reboot(void *c)
{
    (void)c;
    *(volatile uint32_t *)0xE000ED0Cu = 0x05FA0004u; /* AIRCR */
}
static enum fw_reset_cause h_cause(void *c)
{
    (void)c;
    return FW_RESET_POWER;
}

static const struct fw_hal hal = {
    0,     h_millis, h_rtc, h_gas, h_th,  h_bat, h_modem,  h_rssi,  h_conn, h_disc,
    h_pub, h_sub,    h_rr,  h_rw,  h_re,  h_cr,  h_cw,     h_oo,    h_or,   h_ow,
    h_of,  h_mb,     h_mu,  h_me,  h_wdt, h_led, h_reboot, h_cause,
};

static struct fw_dev dev;
static const struct fw_ident ident = {
    "MCS-A001-20251217", "0123456789abcdef", "mcs", "4G", "1.0.2", 0, 0};

int main(void)
{
    fw_init(&dev, &hal, &ident);
    for(;;) {
        uint32_t w = fw_loop(&dev);
        ticks += w ? w : 1; /* on hardware: WFI until SysTick/UART wakes us */
    }
}
