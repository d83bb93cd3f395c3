"""Scripts of the simulated IBC distribution, written for ibkr-ops (no IBC code).

They take the arguments and variables of IBC 3.24.1's Linux scripts, so install code and
systemd units are the same for the real and the simulated zip:
``gatewaystart.sh [-inline]`` (settings in variables at its top),
``scripts/displaybannerandlaunch.sh`` (reads them from the environment) and
``scripts/ibcstart.sh VERSION -g --tws-path= --tws-settings-path= --ibc-path= --ibc-ini=
--java-path= --user= --pw= --fix-user= --fix-pw= --mode= --on2fatimeout=``, which relaunches
"java" after a warm restart (``<settings>/<dir>/autorestart`` → ``-Drestart=<dir>``), after
exit status 88, after a ``COLDRESTART<session>`` file, and after 87 when the action is restart.
"""

from __future__ import annotations

from .versions import IBC_VERSION, TWS_MAJOR_VRSN

GATEWAYSTART = f"""\
#!/bin/bash
# Starts the (simulated) IB Gateway under the simulated IBC. Set the variables below, then
# run `gatewaystart.sh -inline` from a service manager, or without -inline from a desktop.

TWS_MAJOR_VRSN={TWS_MAJOR_VRSN}
IBC_INI=~/ibc/config.ini
TRADING_MODE=
TWOFA_TIMEOUT_ACTION=exit
IBC_PATH=/opt/ibc
TWS_PATH=~/Jts
TWS_SETTINGS_PATH=
LOG_PATH=~/ibc/logs
TWSUSERID=
TWSPASSWORD=
FIXUSERID=
FIXPASSWORD=
JAVA_PATH=
HIDE=

# ---------------------------------------------------------------------------------------------

scripts="${{IBC_PATH}}/scripts"
if [[ ! -x "$scripts/displaybannerandlaunch.sh" && ! -x "$scripts/ibcstart.sh" ]]; then
    echo "Error: no execute permission for scripts in ${{IBC_PATH}}/scripts" >&2
    exit 1
fi
if [[ -n $(pgrep -f "java.*${{IBC_INI}}") ]]; then
    echo "Error: process is already running" >&2
    exit 1
fi
APP=GATEWAY
export TWS_MAJOR_VRSN IBC_INI TRADING_MODE TWOFA_TIMEOUT_ACTION IBC_PATH TWS_PATH
export TWS_SETTINGS_PATH LOG_PATH TWSUSERID TWSPASSWORD FIXUSERID FIXPASSWORD JAVA_PATH APP
if [[ "$1" == "-inline" ]]; then
    exec "${{IBC_PATH}}/scripts/displaybannerandlaunch.sh"
fi
iconic=
if [[ ${{HIDE^^}} == YES || ${{HIDE^^}} == TRUE ]]; then iconic=-iconic; fi
xterm $iconic -T "IBC ($APP $TWS_MAJOR_VRSN)" -e "${{IBC_PATH}}/scripts/displaybannerandlaunch.sh" &
"""

DISPLAYBANNER = """\
#!/bin/bash
# Shows a banner, chooses the log file and runs ibcstart.sh with the exported settings.
read -r IBC_VRSN < "${IBC_PATH}/version"
export IBC_VRSN
log_file=
if [[ -n ${LOG_PATH+set} ]]; then
    if [[ -n $LOG_PATH ]]; then
        mkdir -p "$LOG_PATH"
        log_file="${LOG_PATH}/ibc-${IBC_VRSN}_${APP}-${TWS_MAJOR_VRSN}_$(date +%A).txt"
        if [[ -e $log_file && $(date -r "$log_file" +%D) != $(date +%D) ]]; then
            rm -f "$log_file"
        fi
    else
        log_file=/dev/null
    fi
fi
echo "+ IBC ${IBC_VRSN} (simulated): running ${APP} ${TWS_MAJOR_VRSN}"
if [[ -n $log_file ]]; then echo "+ Diagnostic information is logged in: $log_file"; fi
gw_flag=
if [[ ${APP^^} == GATEWAY ]]; then gw_flag=-g; fi
args=("${TWS_MAJOR_VRSN}" $gw_flag "--tws-path=${TWS_PATH}"
      "--tws-settings-path=${TWS_SETTINGS_PATH}" "--ibc-path=${IBC_PATH}"
      "--ibc-ini=${IBC_INI}" "--user=${TWSUSERID}" "--pw=${TWSPASSWORD}"
      "--fix-user=${FIXUSERID}" "--fix-pw=${FIXPASSWORD}" "--java-path=${JAVA_PATH}"
      "--mode=${TRADING_MODE}" "--on2fatimeout=${TWOFA_TIMEOUT_ACTION}")
trap 'kill -TERM $PID' TERM INT
if [[ -n $log_file ]]; then
    "${IBC_PATH}/scripts/ibcstart.sh" "${args[@]}" >> "$log_file" 2>&1 &
else
    "${IBC_PATH}/scripts/ibcstart.sh" "${args[@]}" &
fi
PID=$!
wait $PID
trap - TERM INT
wait $PID
status=$?
if [[ $status -eq 0 || $status -eq 143 ]]; then
    echo "+ ${APP} ${TWS_MAJOR_VRSN} has finished"
    exit 0
fi
if [[ $status -eq 87 ]]; then
    echo "Second factor authentication dialog has timed out, IBC not restarted"
    if [[ ${TWOFA_TIMEOUT_ACTION^^} == EXIT ]]; then exit 0; fi
fi
echo "+ An error has occurred (exit status $status): see the log above"
read -r _ || true
exit $status
"""

IBCSTART = """\
#!/bin/bash
# Runs the simulated IB Gateway with IBC's arguments and relaunches it as IBC does.
usage() {
    cat <<'EOF'
Usage: ibcstart.sh twsVersion [-g | --gateway] [--tws-path=PATH] [--tws-settings-path=PATH]
                   [--ibc-path=PATH] [--ibc-ini=FILE] [--java-path=DIR] [--user=ID] [--pw=PW]
                   [--fix-user=ID] [--fix-pw=PW] [--mode=live|paper]
                   [--on2fatimeout=restart|exit]
EOF
}
fail() {
    local code=$1
    shift
    echo "Error: $*" >&2
    exit "$code"
}
if [[ -z $1 || $1 == "-?" || $1 == -h || ${1^^} == --HELP ]]; then usage; exit 0; fi

entry=ibcalpha.ibc.IbcTws
program=TWS
tws_version= tws_path= tws_settings_path= ibc_path= ibc_ini= java_path= mode= twofa=
ib_user= ib_pw= fix_user= fix_pw=
for arg in "$@"; do
    case "$arg" in
        -g|--gateway|-G|--GATEWAY) entry=ibcalpha.ibc.IbcGateway; program=Gateway ;;
        --tws-path=*) tws_path=${arg#*=} ;;
        --tws-settings-path=*)
            tws_settings_path=${arg#*=}
            while [[ $tws_settings_path == */ ]]; do tws_settings_path=${tws_settings_path%/}; done ;;
        --ibc-path=*) ibc_path=${arg#*=} ;;
        --ibc-ini=*) ibc_ini=${arg#*=} ;;
        --java-path=*) java_path=${arg#*=} ;;
        --user=*) ib_user=${arg#*=} ;;
        --pw=*) ib_pw=${arg#*=} ;;
        --fix-user=*) fix_user=${arg#*=} ;;
        --fix-pw=*) fix_pw=${arg#*=} ;;
        --mode=*) mode=${arg#*=} ;;
        --on2fatimeout=*) twofa=${arg#*=} ;;
        -*) fail 3 "Invalid parameter '$arg'" ;;
        *) if [[ -z $tws_version ]]; then tws_version=$arg; else fail 3 "Invalid parameter '$arg'"; fi ;;
    esac
done
if [[ -n $mode && ${mode^^} != LIVE && ${mode^^} != PAPER ]]; then
    fail 3 "Trading mode set to $mode but must be either 'live' or 'paper' (case-insensitive)"
fi
if [[ -n $twofa && ${twofa^^} != RESTART && ${twofa^^} != EXIT ]]; then
    fail 3 "2FA timeout action set to $twofa but must be either 'restart' or 'exit' (case-insensitive)"
fi
echo "Simulated IBC ${IBC_VRSN:-} starting $program $tws_version on $(date '+%Y-%m-%d at %T')"
[[ -n $tws_version ]] || fail 2 "TWS major version number has not been supplied"
tws_path=${tws_path:-$HOME/Jts}
tws_settings_path=${tws_settings_path:-$tws_path}
ibc_path=${ibc_path:-/opt/ibc}
ibc_ini=${ibc_ini:-$HOME/ibc/config.ini}
if [[ $program == Gateway ]]; then
    program_path="$tws_path/ibgateway/$tws_version"; alt_path="$tws_path/$tws_version"
    vmoptions="$program_path/ibgateway.vmoptions"; alt_vmoptions="$alt_path/tws.vmoptions"
else
    program_path="$tws_path/$tws_version"; alt_path="$tws_path/ibgateway/$tws_version"
    vmoptions="$program_path/tws.vmoptions"; alt_vmoptions="$alt_path/ibgateway.vmoptions"
fi
if [[ ! -e $program_path/jars ]]; then program_path=$alt_path; vmoptions=$alt_vmoptions; fi
[[ -e $tws_settings_path ]] || fail 5 "TWS settings path: $tws_settings_path does not exist"
[[ -e $program_path/jars ]] ||
    fail 4 "Offline TWS/Gateway version $tws_version is not installed: can't find jars folder"
[[ -e $ibc_path ]] || fail 5 "IBC path: $ibc_path does not exist"
[[ -e $ibc_ini ]] || fail 6 "IBC configuration file: $ibc_ini does not exist"
[[ -e $vmoptions ]] || fail 7 "Neither tws.vmoptions nor ibgateway.vmoptions could be found"
if [[ -n $java_path && ! -e $java_path/java ]]; then
    fail 1 "Java installation at $java_path/java does not exist"
fi

classpath=
for jar in "$program_path"/jars/*.jar; do classpath="${classpath:+$classpath:}$jar"; done
classpath="$classpath:$program_path/.install4j/i4jruntime.jar:$ibc_path/IBC.jar"
vm=()
while IFS= read -r line; do
    if [[ -n $line && $line != \\#* && $line != -D* ]]; then vm+=("$line"); fi
done < "$vmoptions"
session=$(mktemp -u XXXXXXXX)
vm+=("-DjtsConfigDir=$tws_settings_path" "-Dibcsessionid=$session")

if [[ -z $java_path ]]; then
    for cfg in pref_jre.cfg inst_jre.cfg; do
        if [[ -e $program_path/.install4j/$cfg ]]; then
            read -r jre < "$program_path/.install4j/$cfg"
            if [[ -e $jre/bin/java ]]; then java_path="$jre/bin"; break; fi
            echo "Could not find $jre/bin/java" >&2
        fi
    done
fi
if [[ -z $java_path ]] && command -v java >/dev/null; then java_path=$(dirname "$(command -v java)"); fi
if [[ -z $java_path && -x ${JAVA_HOME:-/nonexistent}/bin/java ]]; then java_path="$JAVA_HOME/bin"; fi
[[ -n $java_path && -e $java_path/java ]] || fail 1 "Can't find suitable Java installation"
"$java_path/java" -XshowSettings:properties 2>&1 | grep '^ *java.runtime.version ='

restart_opt=()
find_autorestart() {
    restart_opt=()
    restart_needed=
    local found=() f
    while IFS= read -r f; do
        found+=("$f")
    done < <(find "$tws_settings_path" -mindepth 2 -maxdepth 2 -type f -name autorestart)
    if [[ ${#found[@]} -eq 1 ]]; then
        local dir=${found[0]%/autorestart}
        restart_opt=("-Drestart=${dir##*/}")
        restart_needed=yes
        echo "autorestart file found at ${found[0]}: authentication will not be required"
    elif [[ ${#found[@]} -gt 1 ]]; then
        echo "WARNING: several autorestart files found; all deleted: full authentication will be required"
        rm -f "${found[@]}"
        restart_needed=yes
    else
        echo "autorestart file not found: full authentication will be required"
    fi
}
find_autorestart

creds=()
if [[ -n $fix_user || -n $fix_pw ]]; then creds+=("$fix_user" "$fix_pw"); fi
if [[ -n $ib_user || -n $ib_pw ]]; then creds+=("$ib_user" "$ib_pw"); fi
if [[ -e $program_path/ibgateway ]]; then mv "$program_path/ibgateway" "$program_path/ibgateway1"; fi
if [[ -e $program_path/tws ]]; then mv "$program_path/tws" "$program_path/tws1"; fi
python=/usr/bin/python3  # the system's: a venv's python under another argv[0] loses its prefix
if [[ ! -x $python ]]; then python=$(command -v python3) || fail 1 "python3 not found"; fi
cd "$tws_settings_path" || exit 5
while :; do
    echo "Starting $program: $java_path/java -cp ... ${vm[*]} ${restart_opt[*]} $entry $ibc_ini ${mode}"
    trap 'kill -TERM $PID' TERM INT
    # The simulated IBC is Python: the Gateway's simulator plays IBC and the Gateway at once,
    # under the JVM's name so that `pgrep -f java.*<ini>` finds it as it finds the real one.
    ( exec -a "$java_path/java" "$python" -I "$program_path/jars/ibkr-gateway-sim.pyz" --as-java \
        --install-dir "$program_path" --java-home "${java_path%/bin}" \
        -cp "$classpath" "${vm[@]}" "${restart_opt[@]}" "$entry" "$ibc_ini" \
        "${creds[@]}" $mode 2>/dev/null ) &
    PID=$!
    wait $PID
    trap - TERM INT
    wait $PID
    status=$(( $? % 256 ))
    echo "IBC returned exit status $status"
    if [[ $status -eq 88 ]]; then
        :
    elif [[ -e $tws_settings_path/COLDRESTART$session ]]; then
        rm -f "$tws_settings_path/COLDRESTART$session"
        restart_opt=()
        echo "IBC will cold-restart shortly"
    else
        find_autorestart
        if [[ -n $restart_needed ]]; then
            if [[ -e $tws_settings_path/PAUSE$session ]]; then
                rm -f "$tws_settings_path/PAUSE$session"
                echo "IBC is paused"
                break
            fi
        elif [[ $status -ne 87 || ${twofa^^} != RESTART ]]; then
            break
        fi
    fi
    echo "IBC will restart shortly"
    sleep 1
done
echo "$program finished"
exit $status
"""

COMMANDSEND = """\
#!/bin/bash
# Sends one command (STOP, RESTART, RECONNECTACCOUNT, …) to the IBC command server.
server_address=127.0.0.1
command_server_port=7462
if [[ -z $1 ]]; then
    echo "Error: you must supply a valid IBC command as the first argument" >&2
    exit 1
fi
exec 3<>"/dev/tcp/$server_address/$command_server_port" || exit 1
printf '%s\\n' "$1" >&3
sleep 1
printf 'EXIT\\n' >&3
cat <&3
exec 3<&-
"""


def _sender(command: str) -> str:
    return ("#!/bin/bash\n"
            f"# Sends {command} to the IBC command server (see commandsend.sh).\n"
            'DIR="$(dirname "$(realpath "$0")")"\n'
            f'"$DIR/commandsend.sh" {command}\n')


CONFIG_INI = """\
# IBC settings read by the simulated Gateway (same keys and meanings as IBC's config.ini).
# Keep this file mode 0600: it holds the password.

FIX=no
IbLoginId=edemo
IbPassword=demouser
TradingMode=paper
SecondFactorAuthenticationTimeout=180
ReloginAfterSecondFactorAuthenticationTimeout=no
LoginDialogDisplayTimeout=60
ExistingSessionDetectedAction=manual
OverrideTwsApiPort=
ReadOnlyApi=
AutoRestartTime=
ColdRestartTime=
CommandServerPort=0
ControlFrom=
BindAddress=
CommandPrompt=
SuppressInfoMessages=yes
"""

README = f"""\
Simulated IBC {IBC_VERSION} distribution (ibkr-ops). Scripts written for ibkr-ops that take
the same arguments and variables as IBC's, and start the simulated IB Gateway installed by
ibgateway-stable-standalone-linux-x64.sh. Use the real IBC (github.com/IbcAlpha/IBC) with a
real Gateway. As in IBC's zip, the scripts have no execute bit: chmod them after unzipping.
"""

FILES: dict[str, str] = {
    "gatewaystart.sh": GATEWAYSTART,
    "scripts/displaybannerandlaunch.sh": DISPLAYBANNER,
    "scripts/ibcstart.sh": IBCSTART,
    "commandsend.sh": COMMANDSEND,
    "stop.sh": _sender("STOP"),
    "restart.sh": _sender("RESTART"),
    "reconnectaccount.sh": _sender("RECONNECTACCOUNT"),
    "reconnectdata.sh": _sender("RECONNECTDATA"),
    "config.ini": CONFIG_INI,
    "version": IBC_VERSION + "\n",
    "README.txt": README,
}
