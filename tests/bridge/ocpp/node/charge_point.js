// An OCPP 1.6J charge point written with ocpp-rpc: a second implementation, independent
// of the Python `ocpp` package, that the bridge's tests drive (tests/bridge/ocpp/test_ocpp_node.py).
//
// Usage: node charge_point.js <endpoint ws://host:port/ocpp> <identity> [options JSON]
//   options: {"noMaxProfile": true} answers NotSupported to ChargePointMaxProfile.
// Commands arrive on stdin, one JSON object a line ({"cmd": "start"} ...); what happens
// leaves on stdout, one JSON object a line ({"event": "profile", ...}).
// strictMode validates every message both ways against the OCPP 1.6 schemas (with
// date-time formats), so a frame of the unit's that breaks them shows up as an event.
'use strict';

const readline = require('node:readline');
const { RPCClient, createRPCError } = require('ocpp-rpc');

const [endpoint, identity, optionsText] = process.argv.slice(2);
const options = JSON.parse(optionsText || '{}');

function emit(event, data = {}) {
    process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
}

const config = {
    HeartbeatInterval: '60',
    MeterValueSampleInterval: '30',
    MeterValuesSampledData: 'Energy.Active.Import.Register',
    ChargeProfileMaxStackLevel: '4',
    ChargingScheduleAllowedChargingRateUnit: 'Current',
    ChargingScheduleMaxPeriods: '4',
    ConnectorSwitch3to1PhaseSupported: 'false',
};
const charger = { transactionId: null, offered: 32, profiles: new Map() };

function clientOptions(password) {
    return {
        endpoint,
        identity,
        protocols: ['ocpp1.6'],
        strictMode: true,
        reconnect: true,
        callTimeoutMs: 10000,
        backoff: { initialDelay: 100, maxDelay: 1000, factor: 2, randomisationFactor: 0 },
        ...(password ? { password } : {}),
    };
}

const client = new RPCClient(clientOptions(null));

client.on('strictValidationFailure', ({ method, outbound, isCall, error }) => {
    emit('strictValidationFailure', { method, outbound, isCall, error: String(error?.message) });
});
client.on('badMessage', ({ error }) => emit('badMessage', { error: String(error?.message) }));
client.on('disconnect', ({ code, reason }) => emit('disconnect', { code, reason: String(reason) }));
client.on('open', () => {
    boot().catch((err) => emit('error', { where: 'boot', message: String(err?.message) }));
});

async function boot() {
    const result = await client.call('BootNotification', {
        chargePointVendor: 'ocpp-rpc',
        chargePointModel: 'Node test CP',
    });
    emit('boot', { status: result.status, interval: result.interval });
    if (result.status !== 'Accepted') {
        return;
    }
    for (const connectorId of [0, 1]) {
        await client.call('StatusNotification', { connectorId, errorCode: 'NoError', status: 'Available' });
    }
    emit('ready');
}

function limitOf(profile) {
    const periods = profile.chargingSchedule.chargingSchedulePeriod;
    return periods[0].limit;
}

client.handle('ChangeConfiguration', ({ params }) => {
    if (params.key === 'AuthorizationKey') {
        // The key is the hex of the password; Basic auth carries the bytes.
        const password = Buffer.from(params.value, 'hex');
        client.reconfigure({ password });
        emit('key', { length: password.length });
        return { status: 'Accepted' };
    }
    if (!(params.key in config)) {
        return { status: 'NotSupported' };
    }
    config[params.key] = params.value;
    emit('configured', { key: params.key, value: params.value });
    return { status: 'Accepted' };
});

client.handle('GetConfiguration', ({ params }) => {
    const wanted = params.key ?? Object.keys(config);
    return {
        configurationKey: wanted
            .filter((key) => key in config)
            .map((key) => ({ key, readonly: false, value: config[key] })),
        unknownKey: wanted.filter((key) => !(key in config)),
    };
});

client.handle('SetChargingProfile', ({ params }) => {
    const profile = params.csChargingProfiles;
    emit('profile', { connectorId: params.connectorId, profile });
    if (options.noMaxProfile && profile.chargingProfilePurpose === 'ChargePointMaxProfile') {
        return { status: 'NotSupported' };
    }
    charger.profiles.set(profile.chargingProfileId, profile);
    if (profile.chargingProfileId === 2) {
        charger.offered = limitOf(profile);
    }
    return { status: 'Accepted' };
});

client.handle('ClearChargingProfile', ({ params }) => {
    const existed = params.id !== undefined && charger.profiles.delete(params.id);
    emit('cleared', { params });
    return { status: existed ? 'Accepted' : 'Unknown' };
});

client.handle('TriggerMessage', ({ params }) => {
    emit('trigger', { requestedMessage: params.requestedMessage });
    if (params.requestedMessage === 'BootNotification') {
        setImmediate(() => boot().catch(() => {}));
        return { status: 'Accepted' };
    }
    if (params.requestedMessage === 'MeterValues') {
        setImmediate(() => sendMeterValues(0).catch(() => {}));
        return { status: 'Accepted' };
    }
    return { status: 'NotImplemented' };
});

client.handle('RemoteStopTransaction', ({ params }) => {
    if (params.transactionId !== charger.transactionId) {
        return { status: 'Rejected' };
    }
    setImmediate(() => stopTransaction('Remote').catch(() => {}));
    return { status: 'Accepted' };
});

client.handle('Reset', ({ params }) => {
    emit('reset', { type: params.type });
    return { status: 'Accepted' };
});

client.handle('DataTransfer', () => {
    throw createRPCError('NotSupported');
});

async function startTransaction(idTag) {
    const authorized = await client.call('Authorize', { idTag });
    const started = await client.call('StartTransaction', {
        connectorId: 1,
        idTag,
        meterStart: 0,
        timestamp: new Date().toISOString(),
    });
    charger.transactionId = started.transactionId;
    await client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    emit('started', {
        authorized: authorized.idTagInfo.status,
        status: started.idTagInfo.status,
        transactionId: started.transactionId,
    });
}

async function stopTransaction(reason) {
    const transactionId = charger.transactionId;
    charger.transactionId = null;
    await client.call('StopTransaction', {
        transactionId,
        meterStop: 1000,
        timestamp: new Date().toISOString(),
        reason,
    });
    await client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Finishing' });
    emit('stopped', { transactionId, reason });
}

async function sendMeterValues(amps) {
    const phases = ['L1', 'L2', 'L3'];
    const sampledValue = phases.map((phase) => ({
        value: amps.toFixed(1),
        measurand: 'Current.Import',
        phase,
        unit: 'A',
    }));
    sampledValue.push({ value: String(charger.offered), measurand: 'Current.Offered', unit: 'A' });
    await client.call('MeterValues', {
        connectorId: 1,
        ...(charger.transactionId === null ? {} : { transactionId: charger.transactionId }),
        meterValue: [{ timestamp: new Date().toISOString(), sampledValue }],
    });
    emit('meterSent', { amps });
}

async function tryWrongPassword() {
    const intruder = new RPCClient({ ...clientOptions(Buffer.from('not-the-password')), reconnect: false });
    try {
        await intruder.connect();
        emit('wrongPasswordConnected');
        await intruder.close();
    } catch (err) {
        emit('refused', { code: err.code ?? null, message: String(err.message) });
    }
}

async function sendRaw(id, text) {
    const reply = new Promise((resolve) => {
        const listener = ({ message, outbound }) => {
            if (!outbound && String(message).includes(`"${id}"`)) {
                client.off('message', listener);
                resolve(JSON.parse(String(message)));
            }
        };
        client.on('message', listener);
    });
    client.sendRaw(text);
    emit('raw', { reply: await reply });
}

async function reconnect() {
    await client.close({ code: 1000, reason: 'test reconnects' });
    await client.connect();
    emit('reconnected');
}

const commands = {
    start: (command) => startTransaction(command.idTag ?? 'NODE-TAG'),
    stop: () => stopTransaction('Local'),
    meter: (command) => sendMeterValues(command.amps),
    wrongPassword: () => tryWrongPassword(),
    raw: (command) => sendRaw(command.id, command.text),
    reconnect: () => reconnect(),
    exit: async () => {
        await client.close({ code: 1000 });
        emit('exited');
        process.exit(0);
    },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) {
        emit('error', { where: 'command', message: `unknown command ${command.cmd}` });
        return;
    }
    run(command).then(
        () => emit('done', { cmd: command.cmd }),
        (err) => emit('error', { where: command.cmd, message: String(err?.message) }),
    );
});

client.connect().catch((err) => emit('error', { where: 'connect', message: String(err?.message) }));
